#!/usr/bin/env node
import { runGenerator } from '../dist/generator/index.js'

runGenerator()
