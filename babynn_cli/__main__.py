from babynn_cli.cli import main

main()
