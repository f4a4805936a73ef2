"""nnopt's backends: the numpy interpreter, the C generator and the analog tile target."""
