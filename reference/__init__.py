"""Reference data: communes, emission factors, device registry and plausibility bounds."""
