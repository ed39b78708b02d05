// Swagger UI for /api/v1/docs: reads the OpenAPI document named by #swagger-ui's data-spec.
// "Try it out" sends the bearer token given under Authorize; the session cookie is never used.
(function () {
  "use strict";
  window.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("swagger-ui");
    if (!root || !window.SwaggerUIBundle) { return; }
    window.SwaggerUIBundle({
      url: root.getAttribute("data-spec"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      withCredentials: false,
      validatorUrl: null,
      tryItOutEnabled: false
    });
  });
})();
