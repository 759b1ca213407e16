"""Message content: templates (per channel, in Django's template language), their checks and preview, and
rendering a notification's texts for a recipient."""
