# Model runs and data sets are registered here as they are added.
