"""Beckon's notifier: e-mail as a channel of the conversation, each e-mail once per intent."""
