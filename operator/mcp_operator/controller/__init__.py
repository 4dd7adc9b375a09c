"""The operator's kopf side: the handlers and what they run against the cluster.

registration.py   the kopf handlers, thin: each one calls one function of the modules below
setup.py          kopf's settings, and the operator's state (API client, settings, re-checks) in kopf's memo
reconcile.py      one reconcile in named steps: read the spec, generate the desired state, apply it, status
child_events.py   what a child's event asks of its owner: a reconcile, a status refresh, or nothing
rechecks.py       an owner's status looked at again when the Sentinels will change it without an event

The manifests themselves come from the pure builders one level up (`desired.py` and what it calls).
"""
