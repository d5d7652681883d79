using Opterius.Web.Cli;
using Opterius.Web.Hosting;

// With a verb (migrate, users, tokens, license, demo) this binary is the panel's CLI; without one it serves.
if (args.Length > 0 && CliVerbs.IsVerb(args[0])) return await CliVerbs.RunAsync(args);

var builder = PanelHost.CreateBuilder(args);

// HTTPS on 8443 with a configured or self-signed certificate.
builder.AddPanelHttps();

// Domain services, tokens and the license, sign-in and bearer auth, API plumbing, the Blazor UI.
builder.Services.AddPanelServices();
builder.Services.AddPanelApi();
builder.Services.AddPanelUi();

var app = builder.Build();

app.UsePanelPipeline();

// REST API under /api/v1, the deletions hub, sign-in endpoints and the UI.
app.MapPanelApi();
app.MapPanelUi();

app.Run();
return 0;

public partial class Program;
