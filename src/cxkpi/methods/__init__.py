"""Statistical analyses of CX measures: significance of KPI changes, derived importance."""
