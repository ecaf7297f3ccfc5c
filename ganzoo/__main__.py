from ganzoo.cli.app import main

main()
