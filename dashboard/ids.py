"""Every component id of the dashboard, in one place (kebab-case values ``<page>-<thing>-<role>``)."""

URL = "app-url"
STATE = "app-state-store"
META = "app-meta-store"

HEADER_BADGE = "header-synthetic-badge"
HEADER_COVERAGE = "header-coverage-text"
LANG = "header-lang-radio"

VIEW_TABS = "view-tabs"

INDICATOR = "filter-indicator-dropdown"
PROVINCES = "filter-provinces-dropdown"
PROVINCES_ALL = "filter-provinces-all-button"
PROVINCES_TARGETS = "filter-provinces-targets-button"
START = "filter-start-dropdown"
END = "filter-end-dropdown"
QUICK_12 = "filter-quick-12m-button"
QUICK_YEAR = "filter-quick-year-button"
QUICK_ALL = "filter-quick-all-button"
GRANULARITY = "filter-granularity-radio"
BY = "filter-by-dropdown"
MEASURE = "filter-measure-radio"
CLASSES = "filter-classes-radio"
TOP = "filter-top-input"
MIN_FLOW = "filter-minflow-input"
FILTER_NOTE = "filter-note-text"


def dim_filter(dim: str) -> dict[str, str]:
    """Pattern id of the disaggregation filter for ``dim``."""
    return {"type": "filter-dim-dropdown", "dim": dim}


DIM_FILTER_TYPE = "filter-dim-dropdown"

KPI_ROW = "overview-kpi-row"
MAP = "overview-map-graph"
MAP_NOTE = "overview-map-note"
SERIES = "overview-series-graph"
BREAKDOWN = "overview-breakdown-graph"
RANK_TABLE = "overview-rank-table"

FLOW_MAP = "migration-flowmap-graph"
SANKEY = "migration-sankey-graph"
FLOW_TABLE = "migration-flow-table"
MIGRATION_BREAKDOWN = "migration-breakdown-graph"
MIGRATION_CHANNEL = "migration-channel-graph"

VICTIM_TYPE = "victims-type-graph"
VICTIM_NATIONALITY = "victims-nationality-graph"
VICTIM_SEX_AGE = "victims-sexage-graph"
VICTIM_FLOW_MAP = "victims-flowmap-graph"
VICTIM_TABLE = "victims-province-table"

COVERAGE = "livelihood-coverage-graph"
LIVELIHOOD_KPIS = "livelihood-kpi-row"
LIVELIHOOD_TRAINED = "livelihood-trained-graph"

DOWNLOAD_CSV = "download-csv-button"
DOWNLOAD_XLSX = "download-xlsx-button"
DOWNLOAD_GEOJSON = "download-geojson-button"
DOWNLOAD = "download-file"
COPY_LINK = "share-copy-clipboard"
LINK_TEXT = "share-link-text"

RISK_WEIGHT_TYPE = "risk-weight-slider"
RISK_IWEIGHT_TYPE = "risk-iweight-slider"
RISK_AGGREGATION = "risk-aggregation-radio"
RISK_MONTHS = "risk-months-input"
RISK_RESET = "risk-reset-button"
RISK_MAP = "risk-map-graph"
RISK_NOTE = "risk-map-note"
RISK_TABLE = "risk-rank-table"
RISK_DRILLDOWN = "risk-drilldown-panel"
RISK_METHODOLOGY = "risk-methodology-section"
RISK_DOWNLOAD_CSV = "risk-download-csv-button"
RISK_DOWNLOAD_XLSX = "risk-download-xlsx-button"
RISK_DOWNLOAD = "risk-download-file"

HEADER_ACCOUNT = "header-account-text"  # sign-in link / signed-in user (dashboard/auth.py)

# Import tab (layouts/upload.py, callbacks/upload.py)
IMPORT_GATE = "import-gate-text"
IMPORT_FORM = "import-form-section"
IMPORT_UPLOAD = "import-file-upload"
IMPORT_CLIENT_NOTE = "import-client-note"
IMPORT_REPLACE = "import-replace-checkbox"
IMPORT_LOADING = "import-progress-loading"
IMPORT_STATUS = "import-status-text"
IMPORT_PROBLEMS = "import-problems-table"
IMPORT_SUMMARY = "import-summary-panel"
IMPORT_CONFIRM = "import-confirm-button"
IMPORT_TOKEN = "import-token-store"
IMPORT_WRITTEN = "import-written-store"
IMPORT_UNDO = "import-undo-confirm"
IMPORT_UNDO_BUTTON = "import-undo-button"
IMPORT_UNDO_TARGET = "import-undo-target-store"
IMPORT_BATCHES = "import-batches-table"
