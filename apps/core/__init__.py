"""Shared infrastructure: channels and priorities, the Redis client and its key scheme, the clock, queue
names, metrics, logging, outage handling, text and JSON checks. It imports no other app of ours."""
