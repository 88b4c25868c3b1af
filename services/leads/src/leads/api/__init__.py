"""The leads service's HTTP edge: shared helpers (`common`) and route dependencies (`deps`);
the routers (the REST API, the console's views) come with their features."""
