from tollhouse.cli.main import cli

cli()
