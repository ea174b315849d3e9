"""Tests of smolvla.train (a package so that its test module names need not be unique across tests/)."""
