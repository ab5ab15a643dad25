// replaced by the SDK
