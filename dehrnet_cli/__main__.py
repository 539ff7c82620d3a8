from dehrnet_cli.cli import main

main()
