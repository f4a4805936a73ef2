"""Analyses over `nn` graphs (lifetimes, cost model)."""
