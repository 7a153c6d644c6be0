"""What is: read models built from the events topic, one pure fold each."""
