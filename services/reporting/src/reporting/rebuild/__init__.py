"""`reporting rebuild`: the replay of every topic into a fresh generation, and its worker processes."""
