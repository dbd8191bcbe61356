"""Brokers behind the Broker port: the paper broker by default, the Trading Gateway when configured."""
