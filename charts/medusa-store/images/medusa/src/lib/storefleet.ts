// Names shared by the bootstrap script and the storefront-config route.

// Title of the publishable API key the storefront uses. The bootstrap creates
// it (linked to the default sales channel) when no unrevoked key has it.
export const STOREFRONT_KEY_TITLE = "Storefront (storefleet)"

// Marks the objects the bootstrap created, so a re-run finds them again.
export const BOOTSTRAP_METADATA_KEY = "storefleet_bootstrap"

export const SAMPLE_PRODUCT_HANDLE = "storefleet-sample-t-shirt"
