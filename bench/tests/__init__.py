"""Tests of the benchmark helpers: numbers in, numbers out, no servers and no timing."""
