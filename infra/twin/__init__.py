"""The cloud twin: the deployed template run on this machine (moto, mosquitto, the functions); see ``twin.py``.

Never part of what is deployed: the Lambda package leaves ``infra/`` out.
"""
