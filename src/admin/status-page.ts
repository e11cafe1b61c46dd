// Placeholder until the live status page lands; replaced by the page itself.
export const STATUS_PAGE_HTML = `<!doctype html><title>game-gateway</title><p>status: <a href="/api/status">/api/status</a></p>`;
