"""Valid records in, indicator updates and checkpoints out."""
