"""The migration engine: tenant and user actors running SPEC section 3 on the actor runtime."""
