"""Human- and machine-readable renderings of nnopt's results (memory plans as text, JSON and SVG)."""
