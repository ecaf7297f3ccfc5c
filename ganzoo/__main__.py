from ganzoo.cli.app import run

run()
