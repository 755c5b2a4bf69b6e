"""Who is calling: API keys and OIDC tokens become a `Principal` whose roles decide each route."""
