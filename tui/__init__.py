"""The driftdeck terminal console (Textual). ``core`` never imports from here."""
