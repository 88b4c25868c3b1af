"""The leads service's pure rules (no I/O): who a lead is, how its status may change, which team
gets it, when its first contact is due, and how its webhooks are signed and retried."""
