"""The Microsoft Graph simulator (``mmsd sim``): Graph's wire format on loopback.

It shares no code or constants with mmsd's block engine, so that the two can
check each other.
"""
