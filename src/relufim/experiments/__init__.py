"""One module per reproduced result."""
