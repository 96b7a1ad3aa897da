// The API reference: Swagger UI draws /v1/openapi.json. "Try it out" calls this
// server; paste a token with the Authorize button (a session's or an API token's).

window.addEventListener("DOMContentLoaded", () => {
  globalThis.SwaggerUIBundle({
    url: "/v1/openapi.json",
    dom_id: "#swagger",
    deepLinking: true,
    onComplete: () => {
      document.getElementById("docs-loading").hidden = true;
    },
  });
});
