"""Who listens: the local broker and topics, the publisher, subscribers, detectors."""
