"""What the report shows: the figures (``figures``) and every HTML page with its one stylesheet (``html``)."""
