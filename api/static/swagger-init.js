// Swagger UI's initializer, a static file so the page needs no inline script under the CSP.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The default posts the schema to validator.swagger.io: nothing leaves this page.
    validatorUrl: null,
    persistAuthorization: false,
  });
});
