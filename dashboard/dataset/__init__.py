"""Dataset: counts and imbalance, samples, the crowd's labels, the data-health audit."""
