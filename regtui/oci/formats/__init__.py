"""Readers for each archive format; each turns a Store into roots of the model."""
