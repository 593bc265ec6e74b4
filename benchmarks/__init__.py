"""Speed benchmarks of rlnotes against the libraries a reader would otherwise use."""
