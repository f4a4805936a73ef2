"""The analog in-memory-compute backend: matrices of matrix ops, tile packing, the simulator, reports."""
