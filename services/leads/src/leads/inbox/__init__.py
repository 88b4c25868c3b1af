"""The leads inbox: agents' lists, a lead's page, status changes, claim and reassign, the CSV
export, and the same reads and changes for REST clients with an API key."""
