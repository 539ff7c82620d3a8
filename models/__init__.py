"""DE-HRNet / HRNet networks."""
