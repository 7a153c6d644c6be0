"""What happens: e-service requests, the rules that decide them, and the events they leave.

Nothing here does I/O beyond reading the package's own static data; Kafka and SQL live
in the packages further down DESIGN.md's table.
"""
