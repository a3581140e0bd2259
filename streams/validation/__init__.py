"""Raw records in, valid records and dead letters out."""
