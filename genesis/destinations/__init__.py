"""Where a tracker's rows go: the typed destinations (`kinds`), files (`file`, `xlsx`, `paths`), and
the annotated Google Sheets tabs (`sheets*`) and Airtable tables (`airtable*`), which share the keyed diff
(`sync`), the retry and deadline policy (`retry`) and the sync report (`report`). `formatting` turns
typed values into text, raw or as a field's `format` says."""
