"""The benchmark suite (``make bench``): the gateway vs. a client talking to its upstream directly."""
