"""Stream processing: the faust application and its agents."""
