"""`pawkit view`: one static HTML page (jinja2 + Plotly's offline bundle) over run folders."""
