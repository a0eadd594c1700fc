"""Memoization: ``keys`` decides what makes two calls the same call and
looks results up; ``checkpoints`` is the signed on-disk store that keeps
them across runs."""
