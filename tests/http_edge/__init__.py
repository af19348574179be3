"""Tests of the HTTP edge (`http_edge`)."""
