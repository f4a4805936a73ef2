"""nnopt's dialects: `nn` (tensor graphs) and `quant` (MLIR-compatible quantized types)."""
