"""Ray Serve wiring: one deployment per engine tier, the ingress, and the app builder."""
